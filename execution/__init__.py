"""Between the transport (gateway/) and the GraphQL surface (schema/): every read is
planned from its document (plan.py), bound to one request's arguments (binding.py),
compiled into one SQL statement (db/reads/), run on one connection, and its JSON
assembled into the response (assemble.py); executor.py ties these together, and
broadcast.py delivers live events the same way."""
