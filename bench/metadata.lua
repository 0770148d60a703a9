-- wrk script: GET metadata for the keys listed one per line in the file given after "--".
local keys = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    keys[#keys + 1] = line
  end
end

function request()
  i = i % #keys + 1
  return wrk.format("GET", "/library/metadata/" .. keys[i])
end
