// Package composetest checks docker-compose.yml and the Dockerfile, for a
// machine without a Docker daemon: its test loads the compose file with
// compose-go, the library Docker Compose itself uses, and asserts the demo's
// shape. Every service is there, ports are published on loopback only, the
// worker and enqueue environments are complete and accepted by
// internal/config, health checks and start order are in place, Redis never
// evicts, both ends of every demo credential agree and no other secret is in
// the file. It also reads the Dockerfile as text to check that the image
// builds the three programs.
//
// It has no non-test code; run it with
//
//	go test ./internal/composetest
package composetest
