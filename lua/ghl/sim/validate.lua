-- ghl.sim.validate: request body checks in the style of HighLevel's NestJS
-- class-validator pipe. A schema maps property names to a type word; the
-- check returns an array of messages ("property gender should not exist",
-- "email must be an email", ...) that the caller sends as a 422 message array.
-- Nothing here raises.
local reply = require "ghl.sim.reply"

local M = {}

local null = reply.null

local function is_list(v)
  if type(v) ~= "table" then return false end
  if reply.is_array(v) then return true end
  local n, count = #v, 0
  for _ in pairs(v) do count = count + 1 end
  return count == n
end
M.is_list = is_list

local function is_object(v)
  return type(v) == "table" and (next(v) == nil or not is_list(v))
end
M.is_object = is_object

local function is_integer(v)
  return type(v) == "number" and math.tointeger(v) ~= nil
end

-- Type checkers: value -> ok. The message is built from the word.
local checks = {
  string = function(v) return type(v) == "string" end,
  email = function(v)
    return type(v) == "string" and v:match("^[^%s@]+@[^%s@]+%.[^%s@]+$") ~= nil
  end,
  boolean = function(v) return type(v) == "boolean" end,
  number = function(v) return type(v) == "number" end,
  integer = is_integer,
  array = is_list,
  ["string[]"] = function(v)
    if not is_list(v) then return false end
    for _, x in ipairs(v) do if type(x) ~= "string" then return false end end
    return true
  end,
  object = is_object,
  any = function() return true end,
}

local messages = {
  string = "%s must be a string",
  email = "%s must be an email",
  boolean = "%s must be a boolean value",
  number = "%s must be a number conforming to the specified constraints",
  integer = "%s must be an integer number",
  array = "%s must be an array",
  ["string[]"] = "each value in %s must be a string",
  object = "%s must be an object",
}

-- Check body against schema = {props = {name = type | {type, enum = {...}}},
-- required = {names}, allow_unknown = bool}. Returns an array of messages
-- (empty when valid). JSON null counts as absent.
function M.check(body, schema)
  local errs = {}
  if type(body) ~= "table" or (next(body) ~= nil and is_list(body)) then
    return { "request body must be a JSON object" }
  end
  local required = {}
  for _, name in ipairs(schema.required or {}) do required[name] = true end

  if not schema.allow_unknown then
    local unknown = {}
    for k in pairs(body) do
      if schema.props[k] == nil then unknown[#unknown + 1] = tostring(k) end
    end
    table.sort(unknown)
    for _, k in ipairs(unknown) do
      errs[#errs + 1] = "property " .. k .. " should not exist"
    end
  end

  local names = {}
  for k in pairs(schema.props) do names[#names + 1] = k end
  table.sort(names)
  for _, name in ipairs(names) do
    local rule = schema.props[name]
    if type(rule) == "string" then rule = { rule } end
    local v = body[name]
    if v == nil or v == null or (required[name] and v == "") then
      if required[name] then
        errs[#errs + 1] = name .. " should not be empty"
        if rule[1] ~= "any" and messages[rule[1]] then
          errs[#errs + 1] = string.format(messages[rule[1]], name)
        end
      end
    elseif v == "" and rule[1] == "email" then
      -- an empty email clears the field, as HighLevel accepts
    elseif rule[1] == "string[]" and not is_list(v) then
      errs[#errs + 1] = string.format(messages.array, name)
    elseif not checks[rule[1]](v) then
      errs[#errs + 1] = string.format(messages[rule[1]], name)
    elseif rule.enum then
      local ok = false
      for _, e in ipairs(rule.enum) do if v == e then ok = true end end
      if not ok then
        errs[#errs + 1] = name .. " must be one of the following values: "
          .. table.concat(rule.enum, ", ")
      end
    end
  end
  return errs
end

-- Check and raise 422 with the messages if anything is wrong.
function M.assert(body, schema)
  local errs = M.check(body, schema)
  if #errs > 0 then reply.invalid(errs) end
end

-- A positive integer from a JSON number or a query string, or nil.
function M.to_int(v)
  if type(v) == "string" then v = tonumber(v) end
  if type(v) ~= "number" then return nil end
  return math.tointeger(v)
end

return M
