package archive

// ExtensionCount exposes the size of the extension table to the golden test,
// so an entry added without a golden line fails it.
func ExtensionCount() int { return len(extensions) }
