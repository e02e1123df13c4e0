-- wrk script: earn and redeem points of random members, in turn, each with its own
-- Idempotency-Key; counts the points the answers (201) say were earned and redeemed.
-- Usage: wrk -s points.lua URL -- TOKEN FIRST_ID LAST_ID SEED REASON
-- Prints one JSON line (latencies in microseconds) when done; bench/loadgen.py reads it.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
  table.insert(threads, thread)
end

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
  first, last = tonumber(args[2]), tonumber(args[3])
  math.randomseed(tonumber(args[4]) * 1000 + thread_number)
  prefix = string.format("%08x-%d-", math.random(0, 0x7fffffff), thread_number)
  reason = args[5]
  sent, earned, redeemed, refused = 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local kind = (sent % 2 == 0) and "redeem" or "earn"
  local path = string.format("/api/v1/customers/%d/points/%s", math.random(first, last), kind)
  local body = string.format('{"points": %d, "reason": "%s"}', math.random(1, 100), reason)
  wrk.headers["Idempotency-Key"] = prefix .. sent
  return wrk.format("POST", path, nil, body)
end

function response(status, headers, body)
  if status == 201 then
    local kind, points = string.match(body, '"kind":"(%a+)","points":(%-?%d+)')
    if kind == "earn" then
      earned = earned + tonumber(points)
    elseif kind == "redeem" then
      redeemed = redeemed - tonumber(points)
    end
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local earned_all, redeemed_all, refused_all = 0, 0, 0
  for _, thread in ipairs(threads) do
    earned_all = earned_all + thread:get("earned")
    redeemed_all = redeemed_all + thread:get("redeemed")
    refused_all = refused_all + thread:get("refused")
  end
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "errors_status": %d, "errors_other": %d,'
      .. ' "p50": %d, "p95": %d, "p99": %d, "max": %d, "mean": %.1f,'
      .. ' "earned": %d, "redeemed": %d, "refused": %d}\n',
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean, earned_all, redeemed_all, refused_all))
end
