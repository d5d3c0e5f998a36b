"""Child processes for `modelreg dev` and the tests: PostgreSQL and SeaweedFS from their wheels.

postgres.EmbeddedPostgres and seaweed.EmbeddedSeaweed each own one server process (and a lock
on its data directory); dev.run_dev runs both and then the gRPC server.
"""
