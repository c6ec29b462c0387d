"""Compatibility with other pruning tools' file formats (today: Distiller's schedule YAML)."""

__all__: list[str] = []
