"""What a page draws, per kind of result: poison, train, surfaces, study (SAL and UD), benchmark tables."""
