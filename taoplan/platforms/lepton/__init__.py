"""Platform `lepton`: one DGX Cloud Lepton Deployment per service, through the real leptonai SDK."""
