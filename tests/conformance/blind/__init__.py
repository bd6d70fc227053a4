"""Honest backends written blind: from the vendor documents in shared/seeds alone."""
