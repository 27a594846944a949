-- A module that workflows load with require("lib.format").
local M = {}

function M.percent(part, whole)
  if whole == 0 then return "0%" end
  return string.format("%.1f%%", 100 * part / whole)
end

return M
