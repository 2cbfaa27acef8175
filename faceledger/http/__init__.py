"""What both HTTP front ends (the REST API in faceledger.api and the web UI in faceledger.web)
need, in one place: capped upload reading and staging (``uploads``), media types and file
responses (``media``), content negotiation (``negotiation``), form dates (``dates``), row ids
checked once against the database's range (``ids``) and ingest job submission with one clean-up
path (``jobs``).

This package sits beside api/ and web/, above the services: it may import services and helpers,
never a route or page module, and it opens no database session."""
