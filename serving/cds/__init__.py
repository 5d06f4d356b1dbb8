"""CDS Hooks 2.0: the patient-view service, its HTTP app and the clients' JWT authentication."""
