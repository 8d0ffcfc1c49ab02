"""The add-in shell: the `relationship` CLI and the xlwings add-in set-up."""
