"""FHIR R4: reading a patient's resources into the contract, and answering with a RiskAssessment."""
