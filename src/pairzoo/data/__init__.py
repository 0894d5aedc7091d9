"""Data sets: images in memory and in files, detection canvases, text windows."""
