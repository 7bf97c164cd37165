"""Who may do what: write keys per environment, pseudonymisation secrets, roles and audit."""
