package tokens_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/redis/go-redis/v9"

	"github.com/connectors-io/connectors/tokens"
)

func TestNewRedisClient(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		wantType string
		wantAddr string
		wantDB   int
		wantErr  string
	}{
		{name: "one address is a single node", url: "redis://127.0.0.1:6379/2", wantType: "*redis.Client", wantAddr: "127.0.0.1:6379", wantDB: 2},
		{name: "a password is taken from the URL", url: "redis://:s3cret@redis:6379", wantType: "*redis.Client", wantAddr: "redis:6379"},
		{name: "a master name selects Sentinel", url: "redis://s1:26379,s2:26379?master=mymaster", wantType: "*redis.Client", wantAddr: "FailoverClient"},
		{name: "cluster=true selects Cluster", url: "redis://n1:6379,n2:6379?cluster=true", wantType: "*redis.ClusterClient"},
		{name: "another scheme is an error", url: "http://127.0.0.1:6379", wantErr: "must start with redis:// or rediss://"},
		{name: "a database that is not a number is an error", url: "redis://127.0.0.1:6379/zero", wantErr: `database "zero" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tokens.NewRedisClient(tokens.RedisOptions{URL: tt.url})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			if got := fmt.Sprintf("%T", c); got != tt.wantType {
				t.Errorf("client type %s, want %s", got, tt.wantType)
			}
			if single, ok := c.(*redis.Client); ok && tt.wantAddr != "" {
				if o := single.Options(); o.Addr != tt.wantAddr || o.DB != tt.wantDB {
					t.Errorf("addr %s db %d, want %s db %d", o.Addr, o.DB, tt.wantAddr, tt.wantDB)
				}
			}
		})
	}
}

func TestTokensRedactThemselves(t *testing.T) {
	tok := tokens.Token("eyJhbGciOiJFUzI1NiJ9.secret.sig")
	var logged string
	log := funcr.New(func(prefix, args string) { logged += args }, funcr.Options{})
	log.Info("validating", "token", tok)
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("validating", "token", tok)
	for name, out := range map[string]string{
		"fmt %v": fmt.Sprintf("%v", tok), "fmt %s": fmt.Sprint(tok), "fmt %#v": fmt.Sprintf("%#v", tok),
		"logr": logged, "slog": sb.String(),
	} {
		if strings.Contains(out, "secret") || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s printed %q, want [redacted]", name, out)
		}
	}
}
