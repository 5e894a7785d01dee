-- wrk script for bench/forwarder.sh: POSTs one ingest batch (a zstd
-- segment) again and again, with the headers of docs/specs/ingest.md.
-- The same batch id every time is fine: the forwarder names its objects
-- after it, so each request overwrites the previous one's output.
--
-- Env: FWD_BATCH (file to send), FWD_KEY (API key), FWD_BATCH_ID (UUID).
local f = assert(io.open(assert(os.getenv("FWD_BATCH"), "FWD_BATCH not set"), "rb"))
wrk.method = "POST"
wrk.path = "/v1/batches"
wrk.body = f:read("*a")
f:close()
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("FWD_KEY"), "FWD_KEY not set")
wrk.headers["Content-Type"] = "application/vnd.tapwire.segment.v1+zstd"
wrk.headers["tapwire-batch-id"] = os.getenv("FWD_BATCH_ID") or "019aa190-9b00-7000-8000-000000000001"
