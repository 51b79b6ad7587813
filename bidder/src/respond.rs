//! Writing the BidResponse: one seatbid, one bid per chosen imp.

use config::Timestamp;
use ortb::{Bid, BidRequest, BidResponse, SeatBid};

use crate::notice::NoticeUrl;
use crate::select::Choice;
use crate::snapshot::Snapshot;

/// OpenRTB `mtype` for a banner.
const MTYPE_BANNER: i32 = 1;

#[allow(clippy::too_many_arguments)]
pub fn write(
    snap: &Snapshot,
    req: &BidRequest<'_>,
    choices: &[(usize, Choice)],
    bid_ids: &[String],
    response_id: &str,
    public_url: &str,
    test: bool,
    now: Timestamp,
) -> Vec<u8> {
    let mut bids = Vec::with_capacity(choices.len());
    for ((imp_index, choice), bid_id) in choices.iter().zip(bid_ids) {
        let imp = &req.imp[*imp_index];
        let item = &snap.items[choice.item];
        let adv = &snap.config.advertisers[item.advertiser];
        let order = &adv.orders[item.order];
        let creative = &adv.creatives[choice.creative];
        let notice = |path| {
            NoticeUrl {
                base: public_url,
                path,
                bid_id,
                imp_id: &imp.id,
                line_item: &item.id,
                order: &order.id,
                creative: &creative.id,
                bid_price: choice.price,
                at_ms: now.as_millis(),
                test,
            }
            .write()
        };
        let mut bid = Bid::new(bid_id.as_str(), imp.id.as_ref(), choice.price.as_i64());
        bid.nurl = Some(notice("/notice/win"));
        bid.burl = Some(notice("/notice/billing"));
        bid.adm = creatives::banner_html(creative);
        bid.adid = Some(creative.id.clone());
        bid.crid = Some(creative.id.clone());
        bid.cid = Some(item.id.clone());
        bid.adomain = adv.domains.clone();
        bid.cat = adv.categories.clone();
        bid.w = Some(choice.w as i32);
        bid.h = Some(choice.h as i32);
        bid.mtype = Some(MTYPE_BANNER);
        bid.dealid = choice.deal.clone();
        bids.push(bid);
    }
    let resp = BidResponse {
        id: req.id.to_string(),
        seatbid: vec![SeatBid {
            bid: bids,
            ..Default::default()
        }],
        bidid: Some(response_id.to_string()),
        cur: Some("USD".into()),
        ..Default::default()
    };
    // Serialising our own structs of strings and numbers cannot fail.
    serde_json::to_vec(&resp).unwrap_or_default()
}
