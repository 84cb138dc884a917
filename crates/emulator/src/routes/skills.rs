//! Skills (§7.1): version metadata (resolving `latest`) and archive download,
//! plus the admin upload that creates skills and versions.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{json_body, required_str, P};
use crate::ids;
use crate::state::{AppState, SkillRecord, SkillVersionRecord, Store};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};
use std::io::Write;

fn resolve<'a>(
    store: &'a Store,
    skill_id: &str,
    version: &str,
) -> ApiResult<&'a SkillVersionRecord> {
    let skill = store
        .skill(skill_id)
        .ok_or_else(|| ApiError::not_found("skill", skill_id))?;
    let found = if version == "latest" {
        skill.versions.last()
    } else {
        skill.versions.iter().find(|v| v.id == version)
    };
    found.ok_or_else(|| ApiError::not_found("skill version", &format!("{skill_id}/{version}")))
}

fn version_object(skill_id: &str, version: &SkillVersionRecord) -> Value {
    json!({
        "type": "skill_version",
        "id": version.id,
        "skill_id": skill_id,
        "version": version.id,
        "name": version.name,
        "description": version.description,
        "created_at": version.created_at,
    })
}

pub async fn retrieve_version(
    State(state): State<AppState>,
    caller: Caller,
    P((skill_id, version)): P<(String, String)>,
) -> ApiResult<Json<Value>> {
    let store = state.store();
    caller.require_skill_access(&store, &skill_id)?;
    Ok(Json(version_object(
        &skill_id,
        resolve(&store, &skill_id, &version)?,
    )))
}

pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    P((skill_id, version)): P<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let store = state.store();
    caller.require_skill_access(&store, &skill_id)?;
    let archive = resolve(&store, &skill_id, &version)?.archive.clone();
    Ok(([(header::CONTENT_TYPE, "application/zip")], archive))
}

/// Zips `files` (`{"path": "text"}`) under a `<name>/` wrapper directory,
/// the way skill bundles are packaged (§7.2). Paths ending in `.sh` are 0755.
fn zip_files(name: &str, files: &serde_json::Map<String, Value>) -> ApiResult<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, content) in files {
        let text = content
            .as_str()
            .ok_or_else(|| ApiError::bad_request(format!("files.{path}: must be a string")))?;
        let mode = if path.ends_with(".sh") { 0o755 } else { 0o644 };
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        writer
            .start_file(format!("{name}/{path}"), options)
            .and_then(|_| writer.write_all(text.as_bytes()).map_err(Into::into))
            .map_err(|e| ApiError::bad_request(format!("files.{path}: cannot be zipped: {e}")))?;
    }
    let cursor = writer
        .finish()
        .map_err(|e| ApiError::bad_request(format!("cannot build the skill archive: {e}")))?;
    Ok(cursor.into_inner())
}

/// `POST /v1/emulator/skills` (admin): `{name, description?, skill_id?,
/// archive_base64? | files?}` → a new version (of a new skill unless
/// `skill_id` names an existing one).
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    caller.require_admin()?;
    let body: Value = json_body(&body)?;
    let name = required_str(&body, "name")?.to_string();
    let archive = match (body.get("archive_base64").and_then(Value::as_str), body.get("files")) {
        (Some(encoded), None) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| ApiError::bad_request(format!("archive_base64: not valid standard base64: {e}")))?,
        (None, Some(Value::Object(files))) => zip_files(&name, files)?,
        _ => {
            return Err(ApiError::bad_request(
                "send exactly one of archive_base64 (base64 of a zip/tar archive) or files ({\"path\": \"content\"})",
            ))
        }
    };
    let version = SkillVersionRecord {
        id: ids::new_id("skillver"),
        name,
        description: body
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string),
        created_at: ids::now(),
        archive,
    };
    let mut store = state.store();
    let skill_id = match body.get("skill_id").and_then(Value::as_str) {
        Some(id) => {
            let skill = store
                .skills
                .iter_mut()
                .find(|s| s.id == id)
                .ok_or_else(|| ApiError::not_found("skill", id))?;
            skill.versions.push(version.clone());
            id.to_string()
        }
        None => {
            let id = ids::new_id("skill");
            store.skills.push(SkillRecord {
                id: id.clone(),
                versions: vec![version.clone()],
            });
            id
        }
    };
    Ok(Json(version_object(&skill_id, &version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipped_files_get_a_wrapper_and_modes() {
        let files = json!({"SKILL.md": "# hi", "scripts/run.sh": "echo hi"});
        let bytes = zip_files("demo", files.as_object().unwrap()).unwrap();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let script = archive.by_name("demo/scripts/run.sh").unwrap();
        assert_eq!(script.unix_mode().unwrap() & 0o777, 0o755);
    }
}
