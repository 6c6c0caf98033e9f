"""Safe input and output shared by codegen and runtime.

Bounded YAML reading (`yamlsafe`), the one-line user error (`errors`), test kill points
(`killpoints`) and output folders a command can prove it wrote (`owned`). Both other
packages use these; this package imports neither of them.
"""
