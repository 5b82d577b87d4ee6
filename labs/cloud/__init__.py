"""The offline lab cloud: moto with IAM enforced, an IMDS per instance, a real sshd per instance."""
