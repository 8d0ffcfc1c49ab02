"""openpyxl builders for the planning templates; vocabularies come from the rulebook."""
