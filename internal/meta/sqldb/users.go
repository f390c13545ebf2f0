package sqldb

import (
	"context"
	"fmt"
	"time"

	"github.com/cofferhq/coffer/internal/meta"
)

// ---- users and groups

const userCols = `id, name, email, password_hash, admin, disabled, created_at`

func scanUser(s interface{ Scan(...any) error }) (*meta.User, error) {
	var u meta.User
	var c int64
	if err := s.Scan(&u.ID, &u.Name, &u.Email, &u.PasswordHash, &u.Admin, &u.Disabled, &c); err != nil {
		return nil, err
	}
	u.CreatedAt = fromNanos(c)
	return &u, nil
}

func (q *queries) CreateUser(ctx context.Context, u *meta.User) error {
	if u.ID == "" {
		u.ID = NewID()
	}
	u.CreatedAt = time.Now()
	_, err := q.exec(ctx, "user "+u.Name, `INSERT INTO users (`+userCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		u.ID, u.Name, u.Email, u.PasswordHash, u.Admin, u.Disabled, nanos(u.CreatedAt))
	return err
}

func (q *queries) UpdateUser(ctx context.Context, u *meta.User) error {
	return q.mustAffect(ctx, "user "+u.Name,
		`UPDATE users SET email=$2, password_hash=$3, admin=$4, disabled=$5 WHERE name=$1`,
		u.Name, u.Email, u.PasswordHash, u.Admin, u.Disabled)
}

func (q *queries) withGroups(ctx context.Context, u *meta.User, err error) (*meta.User, error) {
	if err != nil {
		return nil, q.translate(err, "user")
	}
	rows, err := q.r.QueryContext(ctx, `SELECT group_name FROM group_members WHERE user_id=$1 ORDER BY group_name`, u.ID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		u.Groups = append(u.Groups, g)
	}
	return u, rows.Err()
}

func (q *queries) GetUser(ctx context.Context, name string) (*meta.User, error) {
	u, err := scanUser(q.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name=$1`, name))
	if err != nil {
		return nil, q.translate(err, "user "+name)
	}
	return q.withGroups(ctx, u, nil)
}

func (q *queries) GetUserByID(ctx context.Context, id string) (*meta.User, error) {
	u, err := scanUser(q.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id=$1`, id))
	return q.withGroups(ctx, u, err)
}

func (q *queries) ListUsers(ctx context.Context) ([]*meta.User, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, err
	}
	users, err := collect(rows, scanUser)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if _, err := q.withGroups(ctx, u, nil); err != nil {
			return nil, err
		}
	}
	return users, nil
}

func (q *queries) DeleteUser(ctx context.Context, name string) error {
	u, err := q.GetUser(ctx, name)
	if err != nil {
		return err
	}
	// Children first: no reliance on ON DELETE CASCADE being enabled.
	for _, stmt := range []string{
		`DELETE FROM tokens WHERE user_id=$1`,
		`DELETE FROM group_members WHERE user_id=$1`,
		`DELETE FROM users WHERE id=$1`,
	} {
		if _, err := q.exec(ctx, "user "+name, stmt, u.ID); err != nil {
			return err
		}
	}
	return nil
}

func (q *queries) CreateGroup(ctx context.Context, g *meta.Group) error {
	_, err := q.exec(ctx, "group "+g.Name, `INSERT INTO groups (name, description) VALUES ($1,$2)`, g.Name, g.Description)
	return err
}

func (q *queries) GetGroup(ctx context.Context, name string) (*meta.Group, error) {
	var g meta.Group
	err := q.r.QueryRowContext(ctx, `SELECT name, description FROM groups WHERE name=$1`, name).Scan(&g.Name, &g.Description)
	if err != nil {
		return nil, q.translate(err, "group "+name)
	}
	rows, err := q.r.QueryContext(ctx, `SELECT u.name FROM group_members m JOIN users u ON u.id=m.user_id
		WHERE m.group_name=$1 ORDER BY u.name`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		g.Members = append(g.Members, m)
	}
	return &g, rows.Err()
}

func (q *queries) ListGroups(ctx context.Context) ([]*meta.Group, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT name FROM groups ORDER BY name`)
	if err != nil {
		return nil, err
	}
	names, err := collect(rows, func(s interface{ Scan(...any) error }) (string, error) {
		var n string
		return n, s.Scan(&n)
	})
	if err != nil {
		return nil, err
	}
	var out []*meta.Group
	for _, n := range names {
		g, err := q.GetGroup(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

func (q *queries) DeleteGroup(ctx context.Context, name string) error {
	if _, err := q.exec(ctx, "group "+name, `DELETE FROM group_members WHERE group_name=$1`, name); err != nil {
		return err
	}
	return q.mustAffect(ctx, "group "+name, `DELETE FROM groups WHERE name=$1`, name)
}

func (q *queries) AddGroupMember(ctx context.Context, group, user string) error {
	u, err := q.GetUser(ctx, user)
	if err != nil {
		return err
	}
	if _, err := q.GetGroup(ctx, group); err != nil {
		return err
	}
	_, err = q.exec(ctx, "membership", `INSERT INTO group_members (group_name, user_id) VALUES ($1,$2)
		ON CONFLICT (group_name, user_id) DO NOTHING`, group, u.ID)
	return err
}

func (q *queries) RemoveGroupMember(ctx context.Context, group, user string) error {
	u, err := q.GetUser(ctx, user)
	if err != nil {
		return err
	}
	return q.mustAffect(ctx, "member "+user+" of group "+group,
		`DELETE FROM group_members WHERE group_name=$1 AND user_id=$2`, group, u.ID)
}

// ---- tokens

const tokenCols = `t.id, t.user_id, u.name, t.name, t.description, t.hash, t.scopes, t.expires_at, t.created_at, t.last_used_at`

func scanToken(s interface{ Scan(...any) error }) (*meta.Token, error) {
	var t meta.Token
	var e, c, l int64
	if err := s.Scan(&t.ID, &t.UserID, &t.UserName, &t.Name, &t.Description, &t.Hash, &t.Scopes, &e, &c, &l); err != nil {
		return nil, err
	}
	t.ExpiresAt, t.CreatedAt, t.LastUsedAt = fromNanos(e), fromNanos(c), fromNanos(l)
	return &t, nil
}

func (q *queries) CreateToken(ctx context.Context, t *meta.Token) error {
	if t.ID == "" {
		t.ID = NewID()
	}
	t.CreatedAt = time.Now()
	if t.Scopes == "" {
		t.Scopes = "[]"
	}
	_, err := q.exec(ctx, "token "+t.Name, `INSERT INTO tokens (id, user_id, name, description, hash, scopes, expires_at, created_at, last_used_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,0)`,
		t.ID, t.UserID, t.Name, t.Description, t.Hash, t.Scopes, nanos(t.ExpiresAt), nanos(t.CreatedAt))
	return err
}

func (q *queries) GetTokenByHash(ctx context.Context, hash string) (*meta.Token, error) {
	t, err := scanToken(q.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens t JOIN users u ON u.id=t.user_id WHERE t.hash=$1`, hash))
	return t, q.translate(err, "token")
}

func (q *queries) ListTokens(ctx context.Context, userID string) ([]*meta.Token, error) {
	query := `SELECT ` + tokenCols + ` FROM tokens t JOIN users u ON u.id=t.user_id`
	var args []any
	if userID != "" {
		query += ` WHERE t.user_id=$1`
		args = append(args, userID)
	}
	rows, err := q.r.QueryContext(ctx, query+` ORDER BY t.id`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanToken)
}

func (q *queries) DeleteToken(ctx context.Context, id string) error {
	return q.mustAffect(ctx, "token "+id, `DELETE FROM tokens WHERE id=$1`, id)
}

func (q *queries) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := q.exec(ctx, "token", `UPDATE tokens SET last_used_at=$2 WHERE id=$1`, id, nanos(at))
	return err
}

// ---- permissions

func (q *queries) CreatePermission(ctx context.Context, p *meta.Permission) error {
	if p.ID == "" {
		p.ID = NewID()
	}
	p.CreatedAt = time.Now()
	_, err := q.exec(ctx, "permission", `INSERT INTO permissions (id, principal_type, principal, repos, actions, created_at)
		VALUES ($1,$2,$3,$4,$5,$6)`, p.ID, p.PrincipalType, p.Principal, p.Repos, p.Actions, nanos(p.CreatedAt))
	return err
}

func (q *queries) ListPermissions(ctx context.Context) ([]*meta.Permission, error) {
	rows, err := q.r.QueryContext(ctx, `SELECT id, principal_type, principal, repos, actions, created_at FROM permissions ORDER BY id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (*meta.Permission, error) {
		var p meta.Permission
		var c int64
		err := s.Scan(&p.ID, &p.PrincipalType, &p.Principal, &p.Repos, &p.Actions, &c)
		p.CreatedAt = fromNanos(c)
		return &p, err
	})
}

func (q *queries) DeletePermission(ctx context.Context, id string) error {
	return q.mustAffect(ctx, "permission "+id, `DELETE FROM permissions WHERE id=$1`, id)
}

// ---- audit

func (q *queries) AddAudit(ctx context.Context, e *meta.AuditEvent) error {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	if e.Detail == "" {
		e.Detail = "{}"
	}
	_, err := q.exec(ctx, "audit event", `INSERT INTO audit_events (id, at, actor, action, repo, path, detail)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`, e.ID, nanos(e.At), e.Actor, e.Action, e.Repo, e.Path, e.Detail)
	return err
}

func (q *queries) ListAudit(ctx context.Context, repo, before string, limit int) ([]*meta.AuditEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	query := `SELECT id, at, actor, action, repo, path, detail FROM audit_events WHERE 1=1`
	var args []any
	if repo != "" {
		args = append(args, repo)
		query += " AND repo=$1"
	}
	if before != "" {
		args = append(args, before)
		query += fmt.Sprintf(" AND id < $%d", len(args))
	}
	query += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit)
	rows, err := q.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(s interface{ Scan(...any) error }) (*meta.AuditEvent, error) {
		var e meta.AuditEvent
		var at int64
		err := s.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Repo, &e.Path, &e.Detail)
		e.At = fromNanos(at)
		return &e, err
	})
}
