//go:build integration

package gateway_test

import (
	"archive/zip"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/connectors-io/connectors/internal/testbed"
)

// emptyJar is a jar with a manifest only.
func emptyJar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("META-INF/MANIFEST.MF")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("Manifest-Version: 1.0\r\n\r\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pom is a minimal POM of com.example-style coordinates.
func pom(group, artifact, version, packaging string) []byte {
	return []byte(`<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>` + group + `</groupId>
  <artifactId>` + artifact + `</artifactId>
  <version>` + version + `</version>
  <packaging>` + packaging + `</packaging>
</project>
`)
}

// fillMavenRepo serves, below repository (if not ""), what the project of
// mavenValidate needs: its parent POM, its build extension, and the
// plexus-utils 1.1 that Maven adds to an extension naming none.
func fillMavenRepo(t *testing.T, repo *testbed.MavenRepo, repository string) {
	t.Helper()
	repo.AddIn(repository, "com.example", "corp-parent", "1.0", "pom", pom("com.example", "corp-parent", "1.0", "pom"))
	repo.AddIn(repository, "com.example", "build-extension", "1.0", "pom", pom("com.example", "build-extension", "1.0", "jar"))
	repo.AddIn(repository, "com.example", "build-extension", "1.0", "jar", emptyJar(t))
	repo.AddIn(repository, "org.codehaus.plexus", "plexus-utils", "1.1", "pom", pom("org.codehaus.plexus", "plexus-utils", "1.1", "jar"))
	repo.AddIn(repository, "org.codehaus.plexus", "plexus-utils", "1.1", "jar", emptyJar(t))
}

// mavenValidate runs Debian's Maven with the mounted settings.xml and a
// trust store made from the mounted ca.cert (as the classes' comments
// say), on a project whose parent POM and build extension come from the
// repository: `mvn validate` resolves both and needs no plugin. It
// returns Maven's output; the test fails unless both were resolved.
func mavenValidate(t *testing.T, mounted string) string {
	t.Helper()
	env, work := mavenTrust(t, mounted)
	project := filepath.Join(work, "app")
	if err := os.MkdirAll(project, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "pom.xml"), []byte(`<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <parent>
    <groupId>com.example</groupId>
    <artifactId>corp-parent</artifactId>
    <version>1.0</version>
    <relativePath/>
  </parent>
  <artifactId>app</artifactId>
  <build>
    <extensions>
      <extension>
        <groupId>com.example</groupId>
        <artifactId>build-extension</artifactId>
        <version>1.0</version>
      </extension>
    </extensions>
  </build>
</project>
`), 0o600); err != nil {
		t.Fatal(err)
	}
	m2 := filepath.Join(work, "m2")
	out := testbed.Run(t, env, project, "mvn", "-B", "-s", filepath.Join(mounted, "settings.xml"), "-Dmaven.repo.local="+m2, "validate")
	if !strings.Contains(out, "BUILD SUCCESS") {
		t.Fatalf("mvn validate:\n%s", out)
	}
	for _, f := range []string{"com/example/corp-parent/1.0/corp-parent-1.0.pom", "com/example/build-extension/1.0/build-extension-1.0.jar"} {
		if _, err := os.Stat(filepath.Join(m2, f)); err != nil {
			t.Errorf("Maven did not resolve %s: %v", f, err)
		}
	}
	return out
}

// mavenTrust checks that Debian's Maven is there and makes a trust store of
// the mounted ca.cert (as the classes' comments say); it returns Maven's
// environment with it and a work directory.
func mavenTrust(t *testing.T, mounted string) (env []string, work string) {
	t.Helper()
	for _, tool := range []string{"mvn", "keytool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: install the Debian package maven (.ci/run does)", tool)
		}
	}
	work = t.TempDir()
	trust := filepath.Join(work, "truststore.p12")
	testbed.Run(t, nil, "", "keytool", "-importcert", "-noprompt", "-alias", "connectors", "-file", filepath.Join(mounted, "ca.cert"),
		"-keystore", trust, "-storetype", "PKCS12", "-storepass", "changeit")
	return []string{"MAVEN_OPTS=-Djavax.net.ssl.trustStore=" + trust + " -Djavax.net.ssl.trustStorePassword=changeit -Djavax.net.ssl.trustStoreType=PKCS12"}, work
}

// debianMavenRepo is where Debian's Java packages put their Maven
// artifacts: the dependency plugin (libmaven-dependency-plugin-java) and
// everything it needs (junit4 among them).
const debianMavenRepo = "/usr/share/maven-repo"

// TestMavenDependencyGetFetchesAnArtifactThroughTheReverseProxyWithOnlyTheMountedSettings:
// `mvn dependency:get` with the maven class's settings.xml (transport
// reverse: maven-dependency-plugin 3.5.0 fetches the artifact without
// Maven's proxy settings, MDEP-926) resolves the plugin prefix, the
// dependency plugin and its dependencies (Debian's Maven repository,
// served by the test's repository behind Basic auth) and then the artifact
// asked for, all through the gateway's reverse proxy over TLS, trusted
// through a trust store made from the mounted ca.cert, with the
// connector's credential.
func TestMavenDependencyGetFetchesAnArtifactThroughTheReverseProxyWithOnlyTheMountedSettings(t *testing.T) {
	plugin := filepath.Join(debianMavenRepo, "org/apache/maven/plugins/maven-dependency-plugin/3.5.0/maven-dependency-plugin-3.5.0.jar")
	for _, f := range []string{plugin, filepath.Join(debianMavenRepo, "junit/junit/4.x/junit-4.x.jar")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s is missing: install the Debian packages libmaven-dependency-plugin-java and junit4 (.ci/run does)", f)
		}
	}
	e, tlsPort := startGatewayWithReverseTLS(t, "localhost")
	installClass(t, "maven")
	ns := namespace(t, "mavenget")
	repo := testbed.StartMavenRepo(t, "maven-user", "the-real-maven-password")
	repo.ServeDir(debianMavenRepo)
	// What Maven Central's metadata says and Debian's repository lacks:
	// the prefix "dependency" and the plugin's version.
	repo.AddFile("org/apache/maven/plugins/maven-metadata.xml", []byte(`<metadata><plugins><plugin>
  <name>Apache Maven Dependency Plugin</name><prefix>dependency</prefix><artifactId>maven-dependency-plugin</artifactId>
</plugin></plugins></metadata>
`))
	repo.AddFile("org/apache/maven/plugins/maven-dependency-plugin/maven-metadata.xml", []byte(`<metadata>
  <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
  <versioning><latest>3.5.0</latest><release>3.5.0</release><versions><version>3.5.0</version></versions></versioning>
</metadata>
`))
	repo.Add("com.example", "lib", "1.0", "pom", pom("com.example", "lib", "1.0", "jar"))
	repo.Add("com.example", "lib", "1.0", "jar", emptyJar(t))
	sec := &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "maven-user", "password": "the-real-maven-password"}}
	c := connectorOfClass(t, "maven", ns, "repo", repo.URL, sec, repo.CAPEM, "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")

	dir := e.mountWith(t, "maven", "settings", map[string]map[string]string{"settings": {"transport": "reverse"}}, c,
		"https://localhost:"+tlsPort+"/namespaces/"+ns+"/connectors/repo", tok)
	settings, err := os.ReadFile(filepath.Join(dir, "settings.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(settings), "<proxies>") || !strings.Contains(string(settings), "<servers>") {
		t.Fatalf("the reverse transport's settings.xml has a proxy or no server:\n%s", strings.ReplaceAll(string(settings), string(tok), "<token>"))
	}
	env, work := mavenTrust(t, dir)
	m2 := filepath.Join(work, "m2")
	out := testbed.Run(t, env, work, "mvn", "-B", "-s", filepath.Join(dir, "settings.xml"), "-Dmaven.repo.local="+m2,
		"dependency:get", "-Dartifact=com.example:lib:1.0")
	if !strings.Contains(out, "BUILD SUCCESS") {
		t.Fatalf("mvn dependency:get:\n%s", out)
	}
	for _, f := range []string{"com/example/lib/1.0/lib-1.0.jar", "org/apache/maven/plugins/maven-dependency-plugin/3.5.0/maven-dependency-plugin-3.5.0.jar"} {
		if _, err := os.Stat(filepath.Join(m2, f)); err != nil {
			t.Errorf("Maven did not fetch %s: %v", f, err)
		}
	}
	paths, credentialed := repo.Requests()
	if !slices.Contains(paths, "/repository/com/example/lib/1.0/lib-1.0.jar") || !credentialed {
		t.Errorf("the repository got %d requests (the artifact among them: %v), each with the connector's credential: %v",
			len(paths), slices.Contains(paths, "/repository/com/example/lib/1.0/lib-1.0.jar"), credentialed)
	}
	if strings.Contains(out, "the-real-maven-password") || strings.Contains(out, string(tok)) {
		t.Error("Maven's output holds a secret")
	}
}

// TestMavenResolvesFromAPrivateRepositoryThroughTheForwardProxyWithOnlyTheMountedSettings:
// Debian's Maven, with the maven class's settings.xml and the gateway CA
// in a trust store made from the mounted ca.cert, resolves a project's
// parent POM and a build extension from a repository that demands Basic
// auth; every request the repository got carried the connector's
// credential, and neither the mounted files nor Maven's output hold it.
func TestMavenResolvesFromAPrivateRepositoryThroughTheForwardProxyWithOnlyTheMountedSettings(t *testing.T) {
	e := startGateway(t, nil)
	installClass(t, "maven")
	ns := namespace(t, "maven")
	repo := testbed.StartMavenRepo(t, "maven-user", "the-real-maven-password")
	fillMavenRepo(t, repo, "")
	sec := &corev1.Secret{Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{"username": "maven-user", "password": "the-real-maven-password"}}
	c := connectorOfClass(t, "maven", ns, "repo", repo.URL, sec, repo.CAPEM, "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")

	dir := e.mount(t, "maven", "settings", c, "http://"+e.addr, tok)
	settings, err := os.ReadFile(filepath.Join(dir, "settings.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(settings), "the-real-maven-password") {
		t.Fatal("the mounted settings.xml holds the credential")
	}
	out := mavenValidate(t, dir)
	paths, credentialed := repo.Requests()
	if !slices.Contains(paths, "/repository/com/example/corp-parent/1.0/corp-parent-1.0.pom") || !credentialed {
		t.Errorf("the repository got %v, each with the connector's credential: %v", paths, credentialed)
	}
	if strings.Contains(out, "the-real-maven-password") || strings.Contains(out, string(tok)) {
		t.Errorf("Maven's output holds a secret")
	}
}
