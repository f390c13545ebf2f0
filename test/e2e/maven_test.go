package e2e

import (
	"archive/zip"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Maven repositories with the real mvn (3.8, offline from any public
// repository: its plugins come from Debian's /usr/share/maven-repo):
// mvn deploy of a library (release, and a SNAPSHOT twice), the redeploy
// refusal as mvn prints it, deploy:deploy-file, dependency:get, and a
// second project whose build resolves the library through a virtual
// repository that also proxies a second Coffer on loopback. Apache Ivy
// resolves from it too.

const (
	debianMavenRepo = "/usr/share/maven-repo"
	ivyJar          = "/usr/share/java/ivy.jar" // Debian's ivy package
)

// requireMaven fails (never skips) when mvn or Debian's Maven plugins are
// missing: .ci/run installs them.
func requireMaven(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("mvn"); err != nil {
		missing = append(missing, "mvn")
	}
	for _, p := range []string{"maven-deploy-plugin", "maven-install-plugin", "maven-dependency-plugin", "maven-jar-plugin",
		"maven-compiler-plugin", "maven-resources-plugin", "maven-surefire-plugin"} {
		if _, err := os.Stat(filepath.Join(debianMavenRepo, "org/apache/maven/plugins", p)); err != nil {
			missing = append(missing, p)
		}
	}
	if _, err := os.Stat(ivyJar); err != nil {
		missing = append(missing, "ivy")
	}
	if len(missing) > 0 {
		t.Fatalf("the Maven end-to-end tests need %s; install them with: apt-get install -y maven ivy libmaven-deploy-plugin-java "+
			"libmaven-install-plugin-java libmaven-dependency-plugin-java libmaven-resources-plugin-java libmaven-compiler-plugin-java "+
			"libmaven-jar-plugin-java libsurefire-java libmaven-clean-plugin-java (.ci/run does)", strings.Join(missing, ", "))
	}
}

// mavenSettings writes a settings.xml with a private local repository,
// Debian's plugin repository as the mirror of central, and credentials for
// the server id "coffer".
func mavenSettings(t *testing.T, dir, user, password string) string {
	t.Helper()
	p := filepath.Join(dir, "settings.xml")
	s := fmt.Sprintf(`<settings>
  <localRepository>%s</localRepository>
  <mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file://%s</url></mirror></mirrors>
  <servers><server><id>coffer</id><username>%s</username><password>%s</password></server></servers>
</settings>
`, filepath.Join(dir, "m2"), debianMavenRepo, user, password)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mvn runs mvn in dir with settings and returns its output and error.
func mvn(t *testing.T, dir, settings string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("mvn", append([]string{"-B", "-s", settings}, args...)...)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "MAVEN_OPTS" || k == "MAVEN_ARGS" || strings.HasSuffix(strings.ToUpper(k), "_PROXY") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "MAVEN_OPTS=-Xshare:auto -XX:TieredStopAtLevel=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustMvn(t *testing.T, dir, settings string, args ...string) string {
	t.Helper()
	out, err := mvn(t, dir, settings, args...)
	if err != nil {
		t.Fatalf("mvn %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeLibrary writes a one-class library project deploying releases to
// releases and SNAPSHOTs to snapshots.
func writeLibrary(t *testing.T, dir, version, greeting, releases, snapshots string) {
	t.Helper()
	src := filepath.Join(dir, "src/main/java/com/acme")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(src, "Lib.java"), []byte(`package com.acme;
public class Lib { public static String hello() { return "`+greeting+`"; } }
`), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "pom.xml"), []byte(`<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId><artifactId>lib</artifactId><version>`+version+`</version>
  <properties><maven.compiler.source>17</maven.compiler.source><maven.compiler.target>17</maven.compiler.target>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <distributionManagement>
    <repository><id>coffer</id><url>`+releases+`</url></repository>
    <snapshotRepository><id>coffer</id><url>`+snapshots+`</url></snapshotRepository>
  </distributionManagement>
</project>
`), 0o644))
}

func httpGet(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	resp := s.Do(http.MethodGet, path, nil)
	return resp.StatusCode, ReadBody(t, resp)
}

const mavenUpstreamConfig = `repositories:
  - {key: maven-up, format: maven, kind: local, tier: dev, anonymous_read: true}
`

func mavenConfig(upstream string) string {
	return `repositories:
  - {key: maven-release-local, format: maven, kind: local, tier: release}
  - {key: maven-dev, format: maven, kind: local, tier: dev}
  - {key: maven-remote, format: maven, kind: remote, upstream: {url: "` + upstream + `/repository/maven-up/"}, metadata_ttl: 1s}
  - {key: maven, format: maven, kind: virtual, members: [maven-release-local, maven-dev, maven-remote], default_deploy: maven-dev}
`
}

func TestMavenEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs mvn builds (-short)")
	}
	requireMaven(t)
	up := StartServer(t, mavenUpstreamConfig)
	s := StartServer(t, mavenConfig(up.URL))
	work := t.TempDir()
	settings := mavenSettings(t, work, "admin", adminPassword)
	releases := s.URL + "/repository/maven-release-local/"
	snapshots := s.URL + "/repository/maven-dev/"
	lib := filepath.Join(work, "lib")

	// A release.
	writeLibrary(t, lib, "1.0.0", "hello from lib", releases, snapshots)
	mustMvn(t, lib, settings, "deploy")
	built, err := os.ReadFile(filepath.Join(lib, "target/lib-1.0.0.jar"))
	must(t, err)
	code, body := httpGet(t, s, "/repository/maven-release-local/com/acme/lib/1.0.0/lib-1.0.0.jar")
	if code != 200 || body != string(built) {
		t.Fatalf("deployed jar: %d, %d bytes (built %d)", code, len(body), len(built))
	}
	h := sha1.Sum(built)
	if code, body := httpGet(t, s, "/repository/maven-release-local/com/acme/lib/1.0.0/lib-1.0.0.jar.sha1"); code != 200 || body != hex.EncodeToString(h[:]) {
		t.Fatalf("jar.sha1: %d %q", code, body)
	}
	_, meta := httpGet(t, s, "/repository/maven-release-local/com/acme/lib/maven-metadata.xml")
	if !strings.Contains(meta, "<release>1.0.0</release>") {
		t.Fatalf("metadata after deploy:\n%s", meta)
	}

	// Redeploying the same release with other bytes: refused, and mvn says why.
	writeLibrary(t, lib, "1.0.0", "changed", releases, snapshots)
	out, err := mvn(t, lib, settings, "deploy")
	if err == nil || !strings.Contains(out, "Redeploy of com.acme:lib:1.0.0 is not allowed in maven-release-local") {
		t.Fatalf("redeploy: err=%v\n%s", err, out)
	}
	if code, body := httpGet(t, s, "/repository/maven-release-local/com/acme/lib/1.0.0/lib-1.0.0.jar"); code != 200 || body != string(built) {
		t.Fatalf("the release changed after a refused redeploy")
	}

	// A SNAPSHOT, deployed twice: two timestamped builds, metadata at both levels.
	writeLibrary(t, lib, "1.1.0-SNAPSHOT", "snapshot one", releases, snapshots)
	mustMvn(t, lib, settings, "deploy")
	writeLibrary(t, lib, "1.1.0-SNAPSHOT", "snapshot two", releases, snapshots)
	mustMvn(t, lib, settings, "deploy")
	_, vmeta := httpGet(t, s, "/repository/maven-dev/com/acme/lib/1.1.0-SNAPSHOT/maven-metadata.xml")
	if !strings.Contains(vmeta, "<buildNumber>2</buildNumber>") {
		t.Fatalf("SNAPSHOT metadata after two deploys:\n%s", vmeta)
	}
	ts := regexp.MustCompile(`<value>(1\.1\.0-\d{8}\.\d{6}-2)</value>`).FindStringSubmatch(vmeta)
	if ts == nil {
		t.Fatalf("no build 2 in snapshotVersions:\n%s", vmeta)
	}
	_, ameta := httpGet(t, s, "/repository/maven/com/acme/lib/maven-metadata.xml")
	if !strings.Contains(ameta, "<version>1.0.0</version>") || !strings.Contains(ameta, "<version>1.1.0-SNAPSHOT</version>") ||
		!strings.Contains(ameta, "<latest>1.1.0-SNAPSHOT</latest>") || !strings.Contains(ameta, "<release>1.0.0</release>") {
		t.Fatalf("virtual artifact metadata does not merge the members:\n%s", ameta)
	}

	// Apache Ivy resolves latest.release (1.0.0, not the newer SNAPSHOT)
	// from the virtual repository's metadata, with credentials.
	ivyDir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(ivyDir, "ivysettings.xml"), []byte(`<ivysettings>
  <settings defaultResolver="coffer"/>
  <credentials host="127.0.0.1" realm="Coffer" username="admin" passwd="`+adminPassword+`"/>
  <caches defaultCacheDir="`+filepath.Join(ivyDir, "cache")+`"/>
  <resolvers><ibiblio name="coffer" m2compatible="true" root="`+s.URL+`/repository/maven/"/></resolvers>
</ivysettings>
`), 0o644))
	ivy := exec.Command("java", "-jar", ivyJar, "-settings", "ivysettings.xml", "-dependency", "com.acme", "lib", "latest.release",
		"-retrieve", "out/[artifact]-[revision].[ext]")
	ivy.Dir = ivyDir
	if out, err := ivy.CombinedOutput(); err != nil {
		t.Fatalf("ivy: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(ivyDir, "out/lib-1.0.0.jar")); err != nil || !bytes.Equal(got, built) {
		t.Fatalf("ivy did not retrieve lib 1.0.0: %v", err)
	}

	// deploy:deploy-file of a third-party jar into the upstream Coffer.
	thing := filepath.Join(work, "thing-2.0.jar")
	must(t, os.WriteFile(thing, plainJar(t), 0o644))
	mustMvn(t, work, settings, "deploy:deploy-file", "-Dfile="+thing, "-DgroupId=com.other", "-DartifactId=thing",
		"-Dversion=2.0", "-Dpackaging=jar", "-DrepositoryId=coffer", "-Durl="+up.URL+"/repository/maven-up/")
	if code, _ := httpGet(t, up, "/repository/maven-up/com/other/thing/2.0/thing-2.0.pom"); code != 200 {
		t.Fatalf("deploy-file did not store a POM upstream: %d", code)
	}

	// Auth: wrong credentials in settings.xml are refused.
	badSettings := mavenSettings(t, t.TempDir(), "admin", "wrong-password")
	out, err = mvn(t, work, badSettings, "deploy:deploy-file", "-Dfile="+thing, "-DgroupId=com.other", "-DartifactId=thing",
		"-Dversion=2.1", "-Dpackaging=jar", "-DrepositoryId=coffer", "-Durl="+releases)
	if err == nil || !strings.Contains(out, "401") {
		t.Fatalf("deploy with a wrong password: err=%v\n%s", err, out)
	}

	// A second project resolves both through the virtual repository, with a
	// cold local repository: lib from a local member, thing through the remote.
	app := filepath.Join(work, "app")
	must(t, os.MkdirAll(filepath.Join(app, "src/main/java/com/acme/app"), 0o755))
	must(t, os.WriteFile(filepath.Join(app, "src/main/java/com/acme/app/Main.java"), []byte(`package com.acme.app;
public class Main { public static void main(String[] a) { System.out.println(com.acme.Lib.hello()); } }
`), 0o644))
	must(t, os.WriteFile(filepath.Join(app, "pom.xml"), []byte(appPOM(s.URL+"/repository/maven/", "1.0.0")), 0o644))
	appSettings := mavenSettings(t, t.TempDir(), "admin", adminPassword)
	mustMvn(t, app, appSettings, "package")
	m2 := filepath.Join(filepath.Dir(appSettings), "m2")
	got, err := os.ReadFile(filepath.Join(m2, "com/acme/lib/1.0.0/lib-1.0.0.jar"))
	if err != nil || !bytes.Equal(got, built) {
		t.Fatalf("the app's build did not resolve lib 1.0.0 from Coffer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m2, "com/other/thing/2.0/thing-2.0.jar")); err != nil {
		t.Fatalf("the app's build did not resolve thing 2.0 through the remote member: %v", err)
	}
	if code, _ := httpGet(t, s, "/repository/maven-remote/com/other/thing/2.0/thing-2.0.jar"); code != 200 {
		t.Fatalf("thing 2.0 is not cached in the remote repository: %d", code)
	}

	// dependency:get of the SNAPSHOT through the virtual repository: the newest build.
	getSettings := mavenSettings(t, t.TempDir(), "admin", adminPassword)
	mustMvn(t, work, getSettings, "dependency:get", "-Dartifact=com.acme:lib:1.1.0-SNAPSHOT", "-Dtransitive=false",
		"-DremoteRepositories=coffer::default::"+s.URL+"/repository/maven/")
	jar := filepath.Join(filepath.Dir(getSettings), "m2/com/acme/lib/1.1.0-SNAPSHOT/lib-1.1.0-SNAPSHOT.jar")
	want, err := os.ReadFile(filepath.Join(lib, "target/lib-1.1.0-SNAPSHOT.jar"))
	must(t, err)
	if got, err := os.ReadFile(jar); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("dependency:get did not fetch the second SNAPSHOT build (%s): %v", ts[1], err)
	}

	// The upstream goes down: what the remote cached still resolves.
	up.Stop()
	coldSettings := mavenSettings(t, t.TempDir(), "admin", adminPassword)
	mustMvn(t, app, coldSettings, "-U", "package")
}

// plainJar is a jar with only a manifest (a jar built by mvn embeds its
// POM, which deploy-file would use instead of generating one).
func plainJar(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("META-INF/MANIFEST.MF")
	must(t, err)
	io.WriteString(w, "Manifest-Version: 1.0\r\n\r\n")
	must(t, zw.Close())
	return b.Bytes()
}

func appPOM(repoURL, libVersion string) string {
	return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.acme</groupId><artifactId>app</artifactId><version>1.0</version>
  <properties><maven.compiler.source>17</maven.compiler.source><maven.compiler.target>17</maven.compiler.target>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding></properties>
  <repositories><repository><id>coffer</id><url>` + repoURL + `</url>
    <snapshots><enabled>true</enabled></snapshots></repository></repositories>
  <dependencies>
    <dependency><groupId>com.acme</groupId><artifactId>lib</artifactId><version>` + libVersion + `</version></dependency>
    <dependency><groupId>com.other</groupId><artifactId>thing</artifactId><version>2.0</version></dependency>
  </dependencies>
</project>
`
}
