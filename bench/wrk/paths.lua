-- wrk script: GET the paths listed in a file, one per line, each thread from its own start.
-- Usage: wrk -s paths.lua URL -- PATHS_FILE TOKEN
-- Prints one JSON line (latencies in microseconds) when done; bench/loadgen.py reads it.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  position = (thread_number * 7919) % #paths
end

function request()
  position = position % #paths + 1
  return wrk.format("GET", paths[position])
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "errors_status": %d, "errors_other": %d,'
      .. ' "p50": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean))
end
