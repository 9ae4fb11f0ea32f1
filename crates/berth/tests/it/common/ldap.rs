//! A real directory for the tests: OpenLDAP's `slapd` (Debian), started
//! with a private configuration on loopback ports — LDAPS and plain LDAP
//! (for StartTLS) with a certificate of a test CA — and seeded with
//! people, partners, groups and a nested group. `ldapmodify` (ldap-utils)
//! changes it during a test.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

pub const BASE: &str = "dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PASSWORD: &str = "directory-admin";
pub const SERVICE_DN: &str = "cn=berth,ou=services,dc=example,dc=com";
pub const SERVICE_PASSWORD: &str = "service-password";

/// A running slapd.
pub struct Slapd {
    pub ldaps_port: u16,
    pub ldap_port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

const SEED: &str = "
dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: ou=partners,dc=example,dc=com
objectClass: organizationalUnit
ou: partners

dn: ou=groups,dc=example,dc=com
objectClass: organizationalUnit
ou: groups

dn: ou=services,dc=example,dc=com
objectClass: organizationalUnit
ou: services

dn: cn=berth,ou=services,dc=example,dc=com
objectClass: simpleSecurityObject
objectClass: organizationalRole
cn: berth
userPassword: service-password

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
mail: alice@example.com
userPassword: alice-directory-password

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: bob-directory-password

dn: uid=admin2,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: admin
cn: Clash
sn: C
userPassword: clash-password

dn: uid=dave,ou=partners,dc=example,dc=com
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: D
userPassword: dave-directory-password

dn: cn=devs,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: devs
member: uid=alice,ou=people,dc=example,dc=com
member: cn=nobody,dc=example,dc=com

dn: cn=admins,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: admins
member: uid=bob,ou=people,dc=example,dc=com

dn: cn=contractors,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: contractors
member: uid=dave,ou=partners,dc=example,dc=com

dn: cn=platform,ou=groups,dc=example,dc=com
objectClass: groupOfNames
cn: platform
member: cn=contractors,ou=groups,dc=example,dc=com
";

impl Slapd {
    /// Start and seed a directory.
    pub async fn start() -> Slapd {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        // A test CA and a certificate for 127.0.0.1.
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Berth test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("params");
        let cert = params.signed_by(&key, &ca, &ca_key).expect("cert");
        std::fs::write(d.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(d.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(d.join("server.key"), key.serialize_pem()).unwrap();
        std::fs::create_dir_all(d.join("db")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile {dir}/slapd.pid
TLSCACertificateFile {dir}/ca.pem
TLSCertificateFile {dir}/server.pem
TLSCertificateKeyFile {dir}/server.key
database mdb
maxsize 104857600
suffix \"{BASE}\"
rootdn \"{ADMIN_DN}\"
rootpw {ADMIN_PASSWORD}
directory {dir}/db
overlay memberof
access to attrs=userPassword by anonymous auth by self write by * none
access to * by dn.exact=\"{SERVICE_DN}\" read by self read by * none
",
            dir = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let mut s = Slapd {
            ldaps_port: free_port(),
            ldap_port: free_port(),
            dir,
            child: None,
        };
        s.boot().await;
        s.modify("add", SEED).await;
        s
    }

    async fn boot(&mut self) {
        let d = self.dir.path();
        let urls = format!(
            "ldaps://127.0.0.1:{}/ ldap://127.0.0.1:{}/",
            self.ldaps_port, self.ldap_port
        );
        let child = Command::new("/usr/sbin/slapd")
            .args(["-d", "0", "-h", &urls, "-f"])
            .arg(d.join("slapd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start slapd (apt install slapd, as scripts/test-env.sh does)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.ldap_port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let out = self.child.take().unwrap().wait_with_output().await.unwrap();
        panic!(
            "slapd did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop it (an outage).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    pub fn ca_file(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `ldapadd` (`how` = "add") or `ldapmodify` (`how` = "modify") with
    /// this LDIF, as the directory's administrator.
    pub async fn modify(&self, how: &str, ldif: &str) {
        let program = if how == "add" {
            "ldapadd"
        } else {
            "ldapmodify"
        };
        let mut child = Command::new(program)
            .args([
                "-x",
                "-H",
                &format!("ldap://127.0.0.1:{}", self.ldap_port),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (apt install ldap-utils)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .await
            .unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{program}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
