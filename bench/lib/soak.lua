-- caje soak -- wrk script: the steady request mix of bench/soak.py, and status counts by cause.
-- Mix per 1,000 requests: 600 hits on a hot set of 400 objects (1 KiB and 64 KiB), 150 fills and
-- refetches over 50,000 /fast keys (max-age=60, so keys keep expiring), 100 revalidations (/etag,
-- max-age=1 with an ETag), 70 stale-while-revalidate (/swr), 30 Vary variants, 20 origin 503s,
-- 10 POSTs (unsafe: they invalidate a hot object), 20 uncacheable pages.
-- At the end prints one line starting with "SOAK ". A 5xx whose body is the demo origin's own
-- ("status 503 ...") is the origin's; any other 5xx is caje's and fails the soak.
local threads = {}
counts = { ok = 0, redirect = 0, client = 0, origin5xx = 0, caje5xx = 0 }
local codings = { "gzip", "br", "gzip, br", "identity" }

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 100 + tid)
end

local function hot()
  local size = (math.random(4) == 1) and "65536" or "1024"
  return "/bytes/" .. size .. "?k=" .. math.random(200)
end

function request()
  local r = math.random(1000)
  if r <= 600 then
    return wrk.format("GET", hot())
  elseif r <= 750 then
    return wrk.format("GET", "/fast?b=" .. math.random(0, 9) .. "-" .. math.random(5000))
  elseif r <= 850 then
    return wrk.format("GET", "/etag?k=" .. math.random(100))
  elseif r <= 920 then
    return wrk.format("GET", "/swr?k=" .. math.random(100))
  elseif r <= 950 then
    return wrk.format("GET", "/vary?k=" .. math.random(20),
      { ["Accept-Encoding"] = codings[math.random(#codings)] })
  elseif r <= 970 then
    return wrk.format("GET", "/status/503?k=" .. math.random(50))
  elseif r <= 980 then
    return wrk.format("POST", hot())
  else
    return wrk.format("GET", "/")
  end
end

function response(status, headers, body)
  if status < 300 then
    counts.ok = counts.ok + 1
  elseif status < 400 then
    counts.redirect = counts.redirect + 1
  elseif status < 500 then
    counts.client = counts.client + 1
  elseif body:sub(1, 8) == "status 5" then
    counts.origin5xx = counts.origin5xx + 1
  else
    counts.caje5xx = counts.caje5xx + 1
  end
end

function done(summary, latency, requests)
  local total = { ok = 0, redirect = 0, client = 0, origin5xx = 0, caje5xx = 0 }
  for _, thread in ipairs(threads) do
    local theirs = thread:get("counts")
    for k, v in pairs(theirs) do total[k] = total[k] + v end
  end
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%d ok=%d redirect=%d client=%d origin5xx=%d caje5xx=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d p99_us=%d\n",
    summary.requests, total.ok, total.redirect, total.client, total.origin5xx, total.caje5xx,
    e.connect, e.read, e.write, e.timeout, latency:percentile(99)))
end
