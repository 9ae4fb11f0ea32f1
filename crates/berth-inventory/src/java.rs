//! Java: Maven's `pom.properties` (`META-INF/maven/<group>/<artifact>/`),
//! found loose in a layer (an unpacked archive) or inside a `.jar`,
//! `.war` or `.ear`, and inside the archives such an archive holds
//! (Spring Boot's `BOOT-INF/lib`, a war's `WEB-INF/lib`), one level deep.
//! Packages are named `group:artifact` in the `Maven` ecosystem, with the
//! outer archive as their path (deleting it deletes them). Archives are
//! read in memory within `max_binary`, entries within `max_metadata`.

use std::io::{Cursor, Read};

use crate::{Limits, Package};

/// Most entries of one archive looked at.
const MAX_ENTRIES: usize = 100_000;

/// A `pom.properties` Maven writes into what it builds.
pub fn is_pom_properties(path: &str) -> bool {
    path.ends_with("/pom.properties")
        && (path.starts_with("META-INF/maven/") || path.contains("/META-INF/maven/"))
}

/// A Java archive, by its name.
pub fn is_archive(path: &str) -> bool {
    let lower = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    [".jar", ".war", ".ear"]
        .iter()
        .any(|ext| lower.ends_with(ext))
        && lower.len() > 4
}

/// The package a `pom.properties` names, when it names one fully.
pub fn parse_properties(text: &str, path: &str) -> Option<Package> {
    let (mut group, mut artifact, mut version) = (None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((k, v)) = line.split_once(['=', ':']) else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "groupId" => group = Some(v),
            "artifactId" => artifact = Some(v),
            "version" => version = Some(v),
            _ => {}
        }
    }
    let (g, a, v) = (group?, artifact?, version?);
    if [g, a, v].iter().any(|s| s.is_empty() || s.contains("${")) {
        return None;
    }
    Some(Package {
        ecosystem: "Maven".into(),
        name: format!("{g}:{a}"),
        version: v.to_owned(),
        source: None,
        path: path.to_owned(),
    })
}

/// The packages in an archive (and the archives it holds); notes on
/// what was not read go to `notes`.
pub fn parse_archive(
    bytes: &[u8],
    path: &str,
    limits: &Limits,
    notes: &mut Vec<String>,
) -> Vec<Package> {
    let mut out = Vec::new();
    let mut budget = limits.max_binary;
    read_archive(bytes, path, path, limits, &mut budget, 0, &mut out, notes);
    out
}

#[allow(clippy::too_many_arguments)]
fn read_archive(
    bytes: &[u8],
    path: &str,
    shown: &str,
    limits: &Limits,
    budget: &mut u64,
    depth: u32,
    out: &mut Vec<Package>,
    notes: &mut Vec<String>,
) {
    let mut zip = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(z) => z,
        Err(e) => {
            notes.push(format!("{shown}: not a readable Java archive: {e}"));
            return;
        }
    };
    if zip.len() > MAX_ENTRIES {
        notes.push(format!(
            "{shown}: over {MAX_ENTRIES} entries: only the first were read"
        ));
    }
    for i in 0..zip.len().min(MAX_ENTRIES) {
        let mut file = match zip.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                notes.push(format!("{shown}: entry {i}: {e}"));
                continue;
            }
        };
        if !file.is_file() {
            continue;
        }
        let name = file.name().to_owned();
        let nested = depth == 0 && is_archive(&name);
        if !is_pom_properties(&format!("/{name}")) && !nested {
            continue;
        }
        let max = if nested {
            (*budget).min(limits.max_binary)
        } else {
            limits.max_metadata
        };
        if file.size() > max {
            notes.push(format!(
                "{shown}!/{name}: {} bytes, over the {max}-byte limit: not read",
                file.size()
            ));
            continue;
        }
        let mut data = Vec::with_capacity(file.size() as usize);
        if let Err(e) = (&mut file).take(max).read_to_end(&mut data) {
            notes.push(format!("{shown}!/{name}: {e}"));
            continue;
        }
        if nested {
            *budget = budget.saturating_sub(data.len() as u64);
            let inner = format!("{shown}!/{name}");
            read_archive(&data, path, &inner, limits, budget, depth + 1, out, notes);
        } else if let Some(p) = parse_properties(&String::from_utf8_lossy(&data), path) {
            out.push(p);
        }
        if out.len() > limits.max_packages {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(files: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
        let mut z = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, data) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(data).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    const POM: &[u8] = b"#Created by Apache Maven 3.6.3\ngroupId=org.slf4j\nartifactId=slf4j-api\nversion=1.7.32\n";

    #[test]
    fn properties_name_a_package() {
        let p = parse_properties(std::str::from_utf8(POM).unwrap(), "app.jar").unwrap();
        assert_eq!(
            (p.ecosystem.as_str(), p.name.as_str(), p.version.as_str()),
            ("Maven", "org.slf4j:slf4j-api", "1.7.32")
        );
        assert_eq!(parse_properties("groupId=a\nartifactId=b\n", "x"), None);
        assert_eq!(
            parse_properties("groupId=a\nartifactId=b\nversion=${revision}\n", "x"),
            None
        );
        assert!(is_pom_properties(
            "usr/share/x/META-INF/maven/g/a/pom.properties"
        ));
        assert!(!is_pom_properties("usr/share/pom.properties"));
        assert!(is_archive("srv/app/lib/jackson-core.JAR"));
        assert!(!is_archive("srv/.jar"));
    }

    #[test]
    fn a_spring_boot_archive_holds_its_libraries() {
        let lib = zip_of(
            &[(
                "META-INF/maven/com.fasterxml.jackson.core/jackson-core/pom.properties",
                b"artifactId=jackson-core\ngroupId=com.fasterxml.jackson.core\nversion=2.14.1\n",
            )],
            zip::CompressionMethod::Deflated,
        );
        let app = zip_of(
            &[
                (
                    "META-INF/maven/com.example/app/pom.properties",
                    b"groupId=com.example\nartifactId=app\nversion=0.1.0\n",
                ),
                ("BOOT-INF/lib/jackson-core-2.14.1.jar", &lib),
                ("BOOT-INF/lib/broken.jar", b"not a zip"),
            ],
            zip::CompressionMethod::Stored,
        );
        let mut notes = Vec::new();
        let p = parse_archive(&app, "srv/app.jar", &Limits::default(), &mut notes);
        let names: Vec<(&str, &str)> = p
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("com.example:app", "0.1.0"),
                ("com.fasterxml.jackson.core:jackson-core", "2.14.1")
            ]
        );
        assert!(p.iter().all(|p| p.path == "srv/app.jar"));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].starts_with("srv/app.jar!/BOOT-INF/lib/broken.jar: not a readable"),
            "{notes:?}"
        );

        // A library past the budget is named, not read.
        let small = Limits {
            max_binary: 200,
            ..Limits::default()
        };
        let mut notes = Vec::new();
        let p = parse_archive(&app, "srv/app.jar", &small, &mut notes);
        assert_eq!(p.len(), 1);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("jackson-core-2.14.1.jar") && n.contains("limit")),
            "{notes:?}"
        );
    }
}
