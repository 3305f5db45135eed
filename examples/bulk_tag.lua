-- bulk_tag.lua: add a tag to every contact matching a search (the query
-- matches name, email, phone and company), optionally only those that
-- already carry another tag. Contacts that have the tag already are
-- skipped, so it can be run again safely.
--
--   ghlua run examples/bulk_tag.lua --param query=acme --param tag=acme-customer
--   ghlua run examples/bulk_tag.lua --param tag=vip-2025 --param having=vip --dry-run
--
-- The tag is also added to the location's tag catalogue when missing.
-- With --dry-run it searches, says how many it would tag and shows the
-- writes; nothing is tagged.
recipe {
  name = "bulk_tag",
  description = "tag every contact matching a search",
  scopes = { "contacts.readonly", "contacts.write", "locations/tags.readonly", "locations/tags.write",
    "locations/customFields.readonly" },
  writes = true,
  params = {
    tag = { type = "string", required = true, help = "the tag to add" },
    query = { type = "string", help = "search text (default: every contact)" },
    having = { type = "string", help = "only contacts that carry this tag" },
    max = { type = "integer", help = "stop after this many contacts" },
  },
}

return function(p, client)
  local tag = p.tag:lower()
  local params = { query = p.query }
  if p.having then params.filters = { { field = "tags", operator = "eq", value = p.having } } end
  local ids, seen = {}, 0
  for contact in ghl.contacts.search(client, params, { max = p.max }) do
    seen = seen + 1
    local has = false
    for _, t in ipairs(contact.tags or {}) do if t == tag then has = true end end
    if not has then ids[#ids + 1] = contact.id end
  end
  local _, new_tag = ghl.tags.ensure(client, tag)
  for _, id in ipairs(ids) do ghl.contacts.add_tags(client, id, { tag }) end
  if client.dry_run then
    print(("dry run: %d contacts matched, would tag %d '%s'%s, %d had it already"):format(seen, #ids, tag,
      new_tag and " (a new tag)" or "", seen - #ids))
    return { matched = seen, would_tag = #ids, dry_run = true }
  end
  print(("%d contacts matched, %d tagged '%s', %d had it already"):format(seen, #ids, tag, seen - #ids))
  return { matched = seen, tagged = #ids }
end
