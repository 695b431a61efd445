//! Test support: throwaway PostgreSQL clusters, the shared examples folder, temporary data directories.
