-- pipeline_report.lua: opportunities by pipeline and stage, with counts
-- and monetary totals per stage and per pipeline. Reads only.
--
--   ghlua run examples/pipeline_report.lua [--param status=open] [--json]
--
-- status is open, won, lost, abandoned or all (default). The result
-- ({pipelines = [{name, count, value, stages = [{name, count, value}]}]})
-- is printed as JSON after the table.
recipe {
  name = "pipeline_report",
  description = "opportunities by stage, with totals",
  scopes = { "opportunities.readonly" },
  writes = false,
  params = {
    status = { type = "string", default = "all", help = "open, won, lost, abandoned or all" },
  },
}

return function(p, client)
  local report, by_stage = { pipelines = {} }, {}
  for _, pl in ipairs(ghl.opportunities.pipelines(client)) do
    local entry = { id = pl.id, name = pl.name, count = 0, value = 0, stages = {} }
    for _, st in ipairs(pl.stages) do
      local s = { id = st.id, name = st.name, count = 0, value = 0 }
      entry.stages[#entry.stages + 1] = s
      by_stage[st.id] = { s, entry }
    end
    report.pipelines[#report.pipelines + 1] = entry
  end
  local total, value = 0, 0
  for o in ghl.opportunities.search(client, { status = p.status }) do
    local hit = by_stage[o.pipelineStageId]
    local v = tonumber(o.monetaryValue) or 0
    if hit then
      hit[1].count, hit[1].value = hit[1].count + 1, hit[1].value + v
      hit[2].count, hit[2].value = hit[2].count + 1, hit[2].value + v
    end
    total, value = total + 1, value + v
  end
  for _, pl in ipairs(report.pipelines) do
    print(("%s: %d opportunities, %.2f"):format(pl.name, pl.count, pl.value))
    for _, s in ipairs(pl.stages) do
      print(("  %-22s %5d %14.2f"):format(s.name, s.count, s.value))
    end
  end
  print(("total: %d opportunities, %.2f"):format(total, value))
  report.count, report.value = total, value
  return report
end
