"""Wikipedia: dump reading, markup removal, text extraction."""
