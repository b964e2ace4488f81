-- wrk: POST a new record. BENCH_PATH is the collection path.
local path = os.getenv("BENCH_PATH")
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"title":"bench %d","status":"open","amount":%d,"category":"c1"}', n, n % 10000)
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end
