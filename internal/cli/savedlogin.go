package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// savedLogin is what `coffer login` keeps in the CLI configuration file
// ($COFFER_CLI_CONFIG, else <user config dir>/coffer/cli.json, mode 0600).
type savedLogin struct {
	Server    string `json:"server"`
	User      string `json:"user,omitempty"`
	Token     string `json:"token"`
	TokenID   string `json:"token_id,omitempty"`
	TokenName string `json:"token_name,omitempty"`
}

// cliConfigPath returns where the saved login lives.
func cliConfigPath(getenv func(string) string) (string, error) {
	if p := getenv("COFFER_CLI_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory for the saved login (set COFFER_CLI_CONFIG): %w", err)
	}
	return filepath.Join(dir, "coffer", "cli.json"), nil
}

// loadLogin reads the saved login; it returns nil without error when there
// is none.
func loadLogin(path string) (*savedLogin, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the saved login: %w", err)
	}
	var s savedLogin
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("the saved login %s is not valid JSON (run `coffer login` again): %v", path, err)
	}
	if s.Server == "" || s.Token == "" {
		return nil, nil
	}
	return &s, nil
}

// saveLogin writes the saved login readable by its owner only, atomically.
func saveLogin(path string, s *savedLogin) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving the login: %w", err)
	}
	f, err := os.CreateTemp(dir, ".cli-*.json")
	if err != nil {
		return fmt.Errorf("saving the login: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("saving the login: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("saving the login: %w", err)
	}
	return nil
}

// forgetLogin removes the saved login.
func forgetLogin(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("forgetting the saved login: %w", err)
	}
	return nil
}
