//! AES-256-GCM over units [from, to) of a run, for native/gcm.c (see its header): unit k is
//! sealed in place in `dst` (after copying it from `src` when they differ) under
//! nonces[12k..12k+12) with the AAD `prefix` followed by idxs[k] in decimal, its tag going to
//! or checked against tags[16k..16k+16). ring's AES-GCM (BoringSSL's VAES/VPCLMULQDQ AVX2 code
//! where the CPU has it) runs ~1.5-2x OpenSSL 3.0's on this machine.
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};
use std::io::Write;

/// Returns -1, or the first unit in [from, to) that failed (authentication when opening).
///
/// # Safety
/// The caller (native/gcm.c) passes buffers of the documented sizes: key 32 bytes, src and
/// dst `(to) * unit` bytes each (equal or disjoint), nonces 12 and tags 16 bytes per unit,
/// idxs one f64 per unit, prefix `prefix_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn encdisk_ring_units(
    encrypt: i32,
    key: *const u8,
    src: *const u8,
    dst: *mut u8,
    unit: usize,
    nonces: *const u8,
    tags: *mut u8,
    prefix: *const u8,
    prefix_len: usize,
    idxs: *const f64,
    from: usize,
    to: usize,
) -> i64 {
    let mut key = match UnboundKey::new(&AES_256_GCM, std::slice::from_raw_parts(key, 32)) {
        Ok(k) => std::mem::ManuallyDrop::new(LessSafeKey::new(k)),
        Err(_) => return from as i64,
    };
    let failed = 'run: {
        let prefix = std::slice::from_raw_parts(prefix, prefix_len);
        let mut aad = [0u8; 512];
        if prefix_len > aad.len() - 24 {
            break 'run from as i64;
        }
        aad[..prefix_len].copy_from_slice(prefix);
        for k in from..to {
            let mut digits = &mut aad[prefix_len..];
            let before = digits.len();
            if write!(digits, "{}", *idxs.add(k) as u64).is_err() {
                break 'run k as i64;
            }
            let aad_len = prefix_len + before - digits.len();
            let out = std::slice::from_raw_parts_mut(dst.add(k * unit), unit);
            if src != dst as *const u8 {
                out.copy_from_slice(std::slice::from_raw_parts(src.add(k * unit), unit));
            }
            let mut n = [0u8; 12];
            n.copy_from_slice(std::slice::from_raw_parts(nonces.add(12 * k), 12));
            let nonce = Nonce::assume_unique_for_key(n);
            let tag = std::slice::from_raw_parts_mut(tags.add(16 * k), 16);
            let a = Aad::from(&aad[..aad_len]);
            if encrypt != 0 {
                match key.seal_in_place_separate_tag(nonce, a, out) {
                    Ok(t) => tag.copy_from_slice(t.as_ref()),
                    Err(_) => break 'run k as i64,
                }
            } else {
                let t = match Tag::try_from(&tag[..]) {
                    Ok(t) => t,
                    Err(_) => break 'run k as i64,
                };
                if key.open_in_place_separate_tag(nonce, a, t, out, 0..).is_err() {
                    break 'run k as i64;
                }
            }
        }
        -1
    };
    // The key schedule lives in `key` (no heap): zero it, so it does not outlive the call.
    let bytes = &mut *key as *mut LessSafeKey as *mut u8;
    for i in 0..std::mem::size_of::<LessSafeKey>() {
        std::ptr::write_volatile(bytes.add(i), 0);
    }
    failed
}
