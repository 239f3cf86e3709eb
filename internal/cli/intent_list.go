package cli

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/groundzero/groundzero/internal/intent"
	"github.com/groundzero/groundzero/internal/repo"
	"github.com/groundzero/groundzero/record"
)

func (a *app) intentListCmd() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "list",
		Short: "list intents with their status",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := formatFlag(format, "text", "json"); err != nil {
				return err
			}
			r, err := a.repo()
			if err != nil {
				return err
			}
			entries, err := os.ReadDir(r.Abs(repo.IntentsDir))
			if err != nil && !os.IsNotExist(err) {
				return usage(err, "")
			}
			list := []intentStatus{}
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".json") {
					continue
				}
				rel := path.Join(repo.IntentsDir, e.Name())
				data, err := r.ReadFile(rel, record.MaxSize)
				if err != nil {
					continue
				}
				in, err := intent.Parse(data)
				if err != nil {
					list = append(list, intentStatus{File: rel, Problem: err.Error()})
					continue
				}
				st := intentStatus{ID: in.ID, File: rel, Env: in.Env, Action: in.Action, Requester: in.Requester, Expires: in.Expires, Plan: in.PlanSHA256}
				v, verr := a.judgeIntent(r, in, data, rel, "")
				var ce *Error
				if errors.As(verr, &ce) {
					return ce
				}
				if verr != nil {
					st.Problem = verr.Error()
				} else {
					st.Valid, st.Approvers = true, v.Approvers
				}
				list = append(list, st)
			}
			if format == "json" {
				return a.printJSON(list)
			}
			for _, s := range list {
				status := "valid"
				if !s.Valid {
					status = "invalid: " + s.Problem
				}
				fmt.Fprintf(a.stdout, "%s  %-11s %-8s %-10s %s\n", s.ID, s.Action, s.Env, s.Requester, status)
			}
			return nil
		},
	}
	formatFlagVar(c, &format, "text", "json")
	return c
}
