"""The Excel face: xlwings user-defined functions over relationships.engine."""
