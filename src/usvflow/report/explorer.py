"""A self-contained HTML page per session (no server, no network): the session explorer.

The page holds everything it shows: the USV timeline (one row per emitter, coloured by call type);
clicking a call (or choosing it in the list) shows its spectrogram, its features, call type and
emitter, the video frame at its onset, and a top view of the arena with both animals' poses at that
frame and the estimated sound source. The data is one JSON object in the page; the spectrograms are
PNGs and the frames JPEGs (``frame_width`` px wide), as data URIs.

Inputs are the workflow's products: the USVs of :func:`usvflow.report.overview.load_usvs`, the
session's spectrograms (``.npz``), the source estimates (``x_m``, ``y_m`` per ``usv_id``), the metric
3D poses (``<dj>_points3d_translated_rotated_metric.h5``, arena metres, ``recording_frame_rate``) and
one camera's concatenated video.
"""

from __future__ import annotations

import base64
import html
import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import atomic_path

FEATURES = ["start", "stop", "duration", "peak_freq_hz", "mean_freq_hz", "min_freq_hz", "max_freq_hz", "snr_db",
            "chs_count", "peak_amp_ch", "call_type_prob"]  # fmt: skip


def _png(spec: np.ndarray) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import cm
    from PIL import Image

    s = np.asarray(spec, dtype=np.float64)
    lo, hi = np.nanmin(s), np.nanmax(s)
    s = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    rgb = (cm.magma(np.flipud(s))[..., :3] * 255).astype(np.uint8)
    img = Image.fromarray(rgb).resize((256, 192), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def video_frames(mp4, frames: list[int], width: int = 320) -> dict[int, str]:
    """JPEG data URIs of the frames ``frames`` (0-based) of ``mp4``, ``width`` px wide, decoded in one
    ffmpeg pass (``select``)."""
    from PIL import Image

    from ..video.ffmpeg import ffmpeg_exe, probe

    want = sorted({int(f) for f in frames if f >= 0})
    if not want:
        return {}
    info = probe(mp4)
    w = int(width)
    h = int(round(info["height"] * w / info["width"] / 2)) * 2
    expr = "+".join(f"eq(n\\,{f})" for f in want)
    cmd = [ffmpeg_exe(), "-v", "error", "-nostats", "-i", str(mp4), "-map", "0:v:0", "-vf",
           f"select={expr},scale={w}:{h}", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"ffmpeg failed on {mp4}: {proc.stderr.decode(errors='replace')[-2000:]}"
        )
    n = len(proc.stdout) // (w * h * 3)
    arr = np.frombuffer(proc.stdout[: n * w * h * 3], np.uint8).reshape(n, h, w, 3)
    out = {}
    for f, a in zip(want, arr):  # frames past the end of the video are not returned
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=80)
        out[f] = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
    return out


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return round(v, 6) if np.isfinite(v) else None


def explorer_data(session: str, usvs: pd.DataFrame, spectrograms: dict | None = None,
                  estimates: pd.DataFrame | None = None, poses: dict | None = None, video=None,
                  window: tuple[float, float] | None = None, frame_width: int = 320,
                  arena_corners: np.ndarray | None = None) -> dict:  # fmt: skip
    """The page's data: one dict per call and the session's metadata.

    ``poses``: ``{"tracks": (F, A, N, 3) m, "track_names", "node_names", "frame_rate"}``.
    """
    spec_pos = {str(u): i for i, u in enumerate(spectrograms["usv_id"])} if spectrograms else {}
    est = estimates.set_index(estimates["usv_id"].astype(str)) if estimates is not None else None
    fps = (
        float(poses["frame_rate"])
        if poses and np.isfinite(poses.get("frame_rate", np.nan))
        else None
    )
    frame_of = {}
    if fps:
        for u, t in zip(usvs["usv_id"], usvs["start"]):
            frame_of[str(u)] = int(np.floor(float(t) * fps))
    imgs = video_frames(video, list(frame_of.values()), frame_width) if video and frame_of else {}
    calls = []
    for _, r in usvs.iterrows():
        uid = str(r["usv_id"])
        c = {"id": uid, "start": float(r["start"]), "stop": float(r["stop"]), "emitter": r["emitter"],
             "type": r["call_type"] if isinstance(r["call_type"], str) else "USV",
             "features": {k: _num(r[k]) for k in FEATURES if k in r.index}}  # fmt: skip
        if uid in spec_pos:
            c["spectrogram"] = _png(spectrograms["spectrograms"][spec_pos[uid]])
        if est is not None and uid in est.index:
            c["source"] = [_num(est.loc[uid, "x_m"]), _num(est.loc[uid, "y_m"])]
        f = frame_of.get(uid)
        if f is not None:
            c["frame"] = f
            if f in imgs:
                c["image"] = imgs[f]
            if poses is not None and 0 <= f < len(poses["tracks"]):
                p = np.asarray(poses["tracks"][f], dtype=np.float64)[..., :2]
                c["poses"] = {
                    t: [[_num(x), _num(y)] for x, y in p[k]]
                    for k, t in enumerate(poses["track_names"])
                }
        calls.append(c)
    d = {"session": session, "calls": calls, "window": list(window) if window else None,
         "types": sorted({c["type"] for c in calls}),
         "emitters": sorted({c["emitter"] for c in calls} - {"unassigned"}) + ["unassigned"],
         "node_names": list(poses["node_names"]) if poses else [],
         "arena": np.asarray(arena_corners)[:, :2].tolist() if arena_corners is not None else None}  # fmt: skip
    return d


def read_poses(metric_h5) -> dict:
    """The metric 3D poses of a session (``tracks``, ``track_names``, ``node_names``, ``frame_rate``)."""
    import h5py

    with h5py.File(metric_h5, "r") as h:
        names = lambda k: [v.decode() if isinstance(v, bytes) else str(v) for v in h[k][()]]  # noqa: E731
        fr = float(h["recording_frame_rate"][()]) if "recording_frame_rate" in h else float("nan")
        return {"tracks": np.asarray(h["tracks"][()], dtype=np.float32), "track_names": names("track_names"),
                "node_names": names("node_names"), "frame_rate": fr}  # fmt: skip


def read_arena_corners(arena_metric_h5) -> np.ndarray | None:
    """The arena's corners N, W, S, E (4, 3) m of a calibration session's metric file (None when the
    labelling has no such nodes)."""
    a = read_poses(arena_metric_h5)
    names = a["node_names"]
    if not all(c in names for c in ("North", "West", "South", "East")):
        return None
    return np.asarray(
        a["tracks"][0, 0, [names.index(c) for c in ("North", "West", "South", "East")]]
    )


def write_explorer(data: dict, out) -> Path:
    """The self-contained page of :func:`explorer_data`, written atomically."""
    page = _TEMPLATE.replace("__TITLE__", html.escape(f"usvflow explorer: {data['session']}"))
    page = page.replace("__DATA__", json.dumps(data, separators=(",", ":")).replace("</", "<\\/"))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out


_TEMPLATE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body{font-family:sans-serif;margin:12px;color:#222}
#timeline{border:1px solid #ccc;background:#fff}
#timeline rect.call{cursor:pointer}
#timeline rect.call.sel{stroke:#000;stroke-width:2}
#detail{display:flex;gap:16px;margin-top:12px;flex-wrap:wrap}
#detail img{border:1px solid #ccc}
table{border-collapse:collapse;font-size:12px}td{padding:1px 6px;border-bottom:1px solid #eee}
#calls{width:120px}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
</style></head><body>
<h2 id="title"></h2>
<div class="legend" id="legend"></div>
<svg id="timeline" width="1100" height="200"></svg>
<div>Call: <select id="calls"></select> <span id="hint">click a call in the timeline</span></div>
<div id="detail">
 <div><h4 id="call-title">no call selected</h4><img id="spectrogram" width="256" height="192" alt="spectrogram">
  <div style="font-size:11px">spectrogram of the call's loudest channel</div></div>
 <div><h4>features</h4><table id="features"></table></div>
 <div><h4 id="frame-title">video frame at onset</h4><img id="frame" alt="video frame"></div>
 <div><h4>arena (top view): poses at onset, estimated source</h4><svg id="arena" width="300" height="300"></svg></div>
</div>
<script id="data" type="application/json">__DATA__</script>
<script>
const D = JSON.parse(document.getElementById('data').textContent);
const PAL = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf'];
const TC = {}; D.types.forEach((t,i)=>TC[t]=PAL[i%10]);
const AC = ['#1f77b4','#d62728','#2ca02c','#9467bd'];
const NS='http://www.w3.org/2000/svg';
function el(tag, attrs, parent){const e=document.createElementNS(NS,tag);for(const k in attrs)e.setAttribute(k,attrs[k]);if(parent)parent.appendChild(e);return e;}
document.getElementById('title').textContent = D.session + ': ' + D.calls.length + ' USVs';
document.getElementById('legend').innerHTML = D.types.map(t=>`<span><i style="background:${TC[t]}"></i>${t}</span>`).join('');
const svg = document.getElementById('timeline');
const W=1100, L=110, R=10, rowH=30, T0=10;
svg.setAttribute("height", T0 + rowH*D.emitters.length + 30);
const tEnd = Math.max(D.window ? D.window[1] : 0, ...D.calls.map(c=>c.stop), 1e-3);
const x = t => L + (W-L-R)*t/tEnd;
if (D.window) el('rect',{x:x(D.window[0]),y:T0,width:x(D.window[1])-x(D.window[0]),height:rowH*D.emitters.length,fill:'#eee'},svg);
D.emitters.forEach((e,i)=>{const t=el('text',{x:4,y:T0+rowH*i+rowH/2+4,'font-size':12},svg);t.textContent=e;});
for (let s=0; s<=tEnd; s+=Math.max(1, Math.round(tEnd/10))) {const t=el('text',{x:x(s)-4,y:T0+rowH*D.emitters.length+16,'font-size':11},svg);t.textContent=s+' s';}
const sel = document.getElementById('calls');
D.calls.forEach((c,k)=>{
  const i = D.emitters.indexOf(c.emitter);
  const r = el('rect',{class:'call',id:'call-'+c.id,x:x(c.start),y:T0+rowH*i+4,width:Math.max(3,x(c.stop)-x(c.start)),height:rowH-8,fill:TC[c.type]},svg);
  r.addEventListener('click',()=>show(k));
  const o=document.createElement('option');o.value=k;o.textContent=c.id;sel.appendChild(o);
});
sel.addEventListener('change',()=>show(+sel.value));
function show(k){
  const c = D.calls[k];
  document.querySelectorAll('rect.call.sel').forEach(r=>r.classList.remove('sel'));
  document.getElementById('call-'+c.id).classList.add('sel');
  sel.value = k;
  document.getElementById('call-title').textContent = `USV ${c.id}: ${c.type}, ${c.emitter}`;
  const sp = document.getElementById('spectrogram');
  if (c.spectrogram) sp.src = c.spectrogram; else sp.removeAttribute('src');
  const tb = document.getElementById('features'); tb.innerHTML='';
  const rows = Object.assign({usv_id:c.id, call_type:c.type, emitter:c.emitter}, c.features);
  if (c.source) {rows.source_x_m=c.source[0]; rows.source_y_m=c.source[1];}
  if (c.frame!==undefined) rows.video_frame=c.frame;
  for (const kk in rows){const tr=tb.insertRow();tr.insertCell().textContent=kk;const v=rows[kk];tr.insertCell().textContent=(typeof v==='number')?(+v.toPrecision(6)):v;}
  const fr = document.getElementById('frame');
  document.getElementById('frame-title').textContent = c.frame!==undefined ? `video frame ${c.frame} at onset` : 'no video frame';
  if (c.image) fr.src = c.image; else fr.removeAttribute('src');
  drawArena(c);
  document.body.dataset.shown = c.id;
}
function drawArena(c){
  const a = document.getElementById('arena'); a.innerHTML='';
  let pts = [];
  if (D.arena) pts = pts.concat(D.arena);
  if (c.poses) for (const t in c.poses) pts = pts.concat(c.poses[t].filter(p=>p[0]!==null));
  if (c.source && c.source[0]!==null) pts.push(c.source);
  if (!pts.length) return;
  const xs=pts.map(p=>p[0]), ys=pts.map(p=>p[1]);
  const x0=Math.min(...xs)-0.03, x1=Math.max(...xs)+0.03, y0=Math.min(...ys)-0.03, y1=Math.max(...ys)+0.03;
  const s = 280/Math.max(x1-x0, y1-y0);
  const X=p=>10+(p[0]-x0)*s, Y=p=>290-(p[1]-y0)*s;
  if (D.arena) el('polygon',{points:D.arena.map(p=>X(p)+','+Y(p)).join(' '),fill:'none',stroke:'#888'},a);
  if (c.poses) Object.keys(c.poses).forEach((t,i)=>{
    const col = AC[i%AC.length];
    c.poses[t].forEach((p,j)=>{ if (p[0]===null) return;
      el('circle',{cx:X(p),cy:Y(p),r:(D.node_names[j]||'').toLowerCase()==='nose'?5:3,fill:col,class:'node'},a);});
    // a legend in the corner: names drawn beside the animals overlap where they are close
    const tx=el('text',{x:4,y:12+14*i,'font-size':11,fill:col},a);tx.textContent='\u25CF '+t;
  });
  if (c.source && c.source[0]!==null) {const s2=el('path',{d:`M${X(c.source)-7},${Y(c.source)} h14 M${X(c.source)},${Y(c.source)-7} v14`,stroke:'#000','stroke-width':3,id:'source'},a);
    const tx=el('text',{x:4,y:12+14*Object.keys(c.poses||{}).length,'font-size':11},a);tx.textContent='+ source';}
}
</script></body></html>
"""
