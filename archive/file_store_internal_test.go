package archive

// SetListWindow makes s.List hold n directory entries at a time, so tests
// list directories larger than the window with a few keys.
func SetListWindow(s *FileStore, n int) { s.listWindow = n }
