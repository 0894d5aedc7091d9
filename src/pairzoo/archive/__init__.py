"""Archives: validation of an output folder or zip, and packing one."""
