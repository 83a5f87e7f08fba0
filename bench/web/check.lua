-- wrk script of the web scenario: checks every response and prints the run as one JSON line.
--
--   wrk -t2 -c N -d S --timeout T -s check.lua URL -- EXPECTED
--
-- A response counts as good when its status is 200 and its body contains EXPECTED (a line the app
-- computes from what the database returned); anything else is counted as bad, and the first bad one
-- of each wrk thread is kept for the report. wrk's own errors (connect, read, write, timeout) are
-- reported next to them.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   expected = args[1] or ""
   good = 0
   bad = 0
   first_bad = ""
end

function response(status, headers, body)
   if status == 200 and body ~= nil and string.find(body, expected, 1, true) then
      good = good + 1
   else
      bad = bad + 1
      if first_bad == "" then
         first_bad = tostring(status) .. " " .. string.sub(tostring(body), 1, 120)
      end
   end
end

local function json_string(s)
   s = string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end)
   return '"' .. s .. '"'
end

function done(summary, latency, requests)
   local g, b, fb = 0, 0, ""
   for _, t in ipairs(threads) do
      g = g + t:get("good")
      b = b + t:get("bad")
      if fb == "" then fb = t:get("first_bad") end
   end
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "good": %d, "bad": %d, "first_bad": %s, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.0f, "p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}}\n',
      summary.requests, summary.duration, g, b, json_string(fb),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9), latency.max))
end
