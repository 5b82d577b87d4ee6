"""rolelab: the 'IAM Roles for EC2' lesson as a Pulumi program, plus an offline lab cloud."""
