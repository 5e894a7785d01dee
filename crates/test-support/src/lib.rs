//! Shared helpers for tapwire tests: processes, ports, real servers and clients.
