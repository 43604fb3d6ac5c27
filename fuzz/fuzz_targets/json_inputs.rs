//! Every JSON body the client and staff APIs and the WebSocket accept, as a client sends
//! it: parsing never panics, whatever the bytes.
#![no_main]

use custodia_proto as wire;
use custodia_proto::staff;
use libfuzzer_sys::fuzz_target;

fn parse<T: serde::de::DeserializeOwned>(data: &[u8]) {
    let _ = serde_json::from_slice::<T>(data);
}

fuzz_target!(|data: &[u8]| {
    parse::<wire::ClientFrame>(data);
    parse::<wire::RegisterRequest>(data);
    parse::<wire::LoginRequest>(data);
    parse::<staff::StaffSignIn>(data);
    parse::<staff::Enrol>(data);
    parse::<staff::CreateStaff>(data);
    parse::<staff::CreateAccessRequest>(data);
    parse::<staff::ReportRequest>(data);
    parse::<staff::NewLegalRequest>(data);
    parse::<staff::BuildPackage>(data);
    parse::<staff::DecideRequest>(data);
});
