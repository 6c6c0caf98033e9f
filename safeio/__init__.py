"""Safe input and output shared by codegen and runtime.

Bounded YAML reading (`yamlsafe`), inputs that must be regular files (`inputs`), the one-line
user error (`errors`), test kill points (`killpoints`), output folders a command can prove it
wrote (`owned`) and replacing them atomically (`atomic_dir`). Both other packages use these;
this package imports neither of them.
"""
