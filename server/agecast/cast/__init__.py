"""The cast: recognised people → their own identity and age; everyone else left as the plate."""
