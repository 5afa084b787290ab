"""Test helpers shipped with fieldkit: synthetic signals with known answers, card trees, catalogues."""
