-- A subprocess action: the shell does the work, its output lines land in the job log.
return workflow {
  description = "Report the largest files in the scratch directory",
  timeout = "5m",
  actions = {
    survey = { shell = "df -h . | tail -n 1; echo checked at $(date -u +%H:%M:%S)" },
    decide = {
      needs = { "survey" },
      run = function(ctx)
        return { exit_code = ctx.outputs.survey.exit_code }
      end,
    },
  },
}
