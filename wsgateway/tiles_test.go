package wsgateway_test

import (
	"encoding/json"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

// /api/v1/me carries the map's tile settings: OpenStreetMap's credit comes
// with OpenStreetMap's tiles however they were named (the --tiles flag's
// default is the URL itself, not ""), an explicit credit wins, other tiles
// get none, and the tiles' coordinate system defaults to wgs84.
func TestMeTileSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  wsgateway.Config
		want [3]string // tiles, tiles_attribution, tiles_crs
	}{
		{"zero", wsgateway.Config{},
			[3]string{wsgateway.DefaultTiles, wsgateway.DefaultTilesAttribution, "wgs84"}},
		{"flag default", wsgateway.Config{Tiles: wsgateway.DefaultTiles},
			[3]string{wsgateway.DefaultTiles, wsgateway.DefaultTilesAttribution, "wgs84"}},
		{"own credit", wsgateway.Config{Tiles: wsgateway.DefaultTiles, TilesAttribution: "mine"},
			[3]string{wsgateway.DefaultTiles, "mine", "wgs84"}},
		{"amap", wsgateway.Config{Tiles: "https://wprd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}&style=7", TilesCRS: "gcj02"},
			[3]string{"https://wprd0{s}.is.autonavi.com/appmaptile?x={x}&y={y}&z={z}&style=7", "", "gcj02"}},
		{"none", wsgateway.Config{Tiles: "none", TilesCRS: "bd09"}, [3]string{"", "", "bd09"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			tok := e.addUser("alice", storage.RoleAdmin)
			status, body := e.get(tok, "/api/v1/me")
			var me struct {
				Tiles            string `json:"tiles"`
				TilesAttribution string `json:"tiles_attribution"`
				TilesCRS         string `json:"tiles_crs"`
			}
			if err := json.Unmarshal([]byte(body), &me); err != nil || status != 200 {
				t.Fatalf("me: %d %s", status, body)
			}
			if got := [3]string{me.Tiles, me.TilesAttribution, me.TilesCRS}; got != tc.want {
				t.Errorf("me tiles, attribution, crs = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnknownTilesCRSIsRefused(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	_, err := wsgateway.New(wsgateway.Config{TilesCRS: "epsg4326"}, e.rdb, e.rdb, e.store, nil)
	const want = `tiles crs "epsg4326": want wgs84, gcj02 or bd09`
	if err == nil || err.Error() != want {
		t.Fatalf("New with tiles crs epsg4326: %v, want %s", err, want)
	}
}
