"""Register-level stand-ins for chips, one module per chip, as their datasheets describe them."""
